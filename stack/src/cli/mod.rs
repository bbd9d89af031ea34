pub(crate) fn main() -> i32 {
    0
}
