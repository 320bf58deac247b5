//! Times the velocity MLP at the reference shapes: `cargo run --release --example flow_bench`
//! (one JSON line: step and VJP ms); with the argument `gemms`, a table of the step's GEMMs
//! through the `gemm` crate and through `sgemm_wide`. Threads: `WF_THREADS` (default 2).
fn main() {
    let threads = std::env::var("WF_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    if std::env::args().nth(1).as_deref() == Some("gemms") {
        println!("| GEMM | m | n | k | GFLOP | gemm crate ms (GFLOP/s) | sgemm_wide ms (GFLOP/s) |");
        println!("|---|---|---|---|---|---|---|");
        for r in weightflow::flow::bench::gemm_table(10_853, 32, 2048, 64, 5, threads) {
            println!(
                "| {} | {} | {} | {} | {:.2} | {:.1} ({:.0}) | {:.1} ({:.0}) |",
                r.name,
                r.m,
                r.n,
                r.k,
                r.gflop,
                r.crate_ms,
                r.gflop / r.crate_ms * 1e3,
                r.wide_ms,
                r.gflop / r.wide_ms * 1e3
            );
        }
        return;
    }
    let r = weightflow::flow::bench::mlp_step(10_853, 32, 2048, 64, 5, threads);
    println!("{}", serde_json::to_string(&r).unwrap_or_default());
}
