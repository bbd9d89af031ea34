use std::io::{Read, Write};
use std::time::Instant;
use ws2_stack::net::{TcpListener, TcpStream, UdpSocket};
use ws2_stack::{Stack, StackConfig};
use ws2_tap::VirtualSwitch;
fn main() {
    let switch = VirtualSwitch::new(1);
    let loss: f64 = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(0.0);
    let a = Stack::new(StackConfig::new("10.0.0.1/24".parse().unwrap()), switch.port_with(ws2_tap::Impairments { loss, ..Default::default() })).unwrap();
    let b = Stack::new(StackConfig::new("10.0.0.2/24".parse().unwrap()), switch.port_with(ws2_tap::Impairments { loss, ..Default::default() })).unwrap();
    let rx = UdpSocket::bind(&b, "10.0.0.2:9000").unwrap();
    let tx = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    tx.send_to(b"ping", "10.0.0.2:9000").unwrap();
    let mut buf = [0u8; 16];
    let t = Instant::now();
    let (n, from) = rx.recv_from(&mut buf).unwrap();
    eprintln!("udp {n} from {from} in {:?}; stats a {:?}", t.elapsed(), a.stats());
    let listener = TcpListener::bind(&b, "10.0.0.2:7").unwrap();
    eprintln!("listening");
    let mut client = TcpStream::connect(&a, "10.0.0.2:7").unwrap();
    eprintln!("connected");
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"hello").unwrap();
    server.read_exact(&mut buf[..5]).unwrap();
    eprintln!("tcp ok {:?}", a.stats());
    let n: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(8 << 20);
    let t = Instant::now();
    let w = std::thread::spawn(move || {
        let data = vec![7u8; 64 * 1024];
        let mut sent = 0;
        while sent < n { client.write_all(&data).unwrap(); sent += data.len(); }
        client
    });
    let mut got = 0;
    let mut big = vec![0u8; 65536];
    while got < n { let k = server.read(&mut big).unwrap(); assert!(k > 0); got += k; }
    let _c = w.join().unwrap();
    eprintln!("b {:?}", b.stats());
    eprintln!("bulk {} MiB in {:?} = {:.0} Mbit/s; {:?}", n >> 20, t.elapsed(), n as f64 * 8.0 / t.elapsed().as_secs_f64() / 1e6, a.stats());
}
#[allow(dead_code)]
fn bulk() {}
