//! Times the velocity MLP at the reference shapes: `cargo run --release --example flow_bench`.
fn main() {
    let threads = std::env::var("WF_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let r = weightflow::flow::bench::mlp_step(10_853, 32, 2048, 64, 5, threads);
    println!("{}", serde_json::to_string(&r).unwrap_or_default());
}
