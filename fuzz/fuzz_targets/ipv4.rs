//! cargo-fuzz target `ipv4`: see `ws2_fuzz::Target::Ipv4` for the frames it sends and
//! what it asserts (no panic, bounded memory, a live reference connection).
#![no_main]

#[global_allocator]
static ALLOC: ws2_fuzz::alloc::Counting = ws2_fuzz::alloc::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| ws2_fuzz::run(ws2_fuzz::Target::Ipv4, data));
