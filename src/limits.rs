//! Bounds on what an input may make the process allocate, checked before allocating: a memory
//! budget (the `WEIGHTFLOW_MEMORY_BUDGET` environment variable, e.g. `4G`, `512M` or a byte count;
//! by default half the machine's memory, at least 1 GiB) for sizes taken from file headers,
//! configs and the command line, and a cap on how far compressed or encoded data may inflate
//! (at most [`MAX_RATIO`]× the input's size beyond a floor of [`FLOOR`] bytes), which stops
//! decompression bombs whatever the budget.

/// Name of the environment variable that sets the memory budget.
pub const BUDGET_VAR: &str = "WEIGHTFLOW_MEMORY_BUDGET";
/// Inflated data up to this many bytes is accepted whatever its compression ratio.
pub const FLOOR: u64 = 64 << 20;
/// Beyond [`FLOOR`], inflated data may be at most this many times its compressed size
/// (real images and arrays compress 1–20×; deflate's worst case is about 1032×).
pub const MAX_RATIO: u64 = 200;

/// A request for more memory than the limits allow.
#[derive(Debug, thiserror::Error)]
#[error("{what} needs {} (limit {}: {why}; set {BUDGET_VAR} to change the memory budget)", human(*.bytes), human(*.limit))]
pub struct LimitError {
    pub what: String,
    pub bytes: u64,
    pub limit: u64,
    pub why: &'static str,
}

/// Bytes as a short human string (`1.50 GiB`).
pub fn human(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// Parses `4G`, `512M`, `64K` or a plain byte count.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        (i, 't' | 'T') => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}

fn mem_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// The memory budget in bytes.
pub fn budget() -> u64 {
    if let Some(b) = std::env::var(BUDGET_VAR).ok().and_then(|v| parse_bytes(&v)) {
        return b;
    }
    mem_total().map_or(8 << 30, |m| (m / 2).max(1 << 30))
}

/// Checks that allocating `bytes` (None: the size overflowed) for `what` fits the budget.
pub fn check_alloc(what: &str, bytes: Option<u64>) -> Result<u64, LimitError> {
    let limit = budget();
    match bytes {
        Some(b) if b <= limit => Ok(b),
        b => Err(LimitError {
            what: what.to_string(),
            bytes: b.unwrap_or(u64::MAX),
            limit,
            why: "the memory budget",
        }),
    }
}

/// `a × b × …` as bytes, `None` on overflow.
pub fn product(dims: &[usize]) -> Option<u64> {
    dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64))
}

/// The most bytes that `input_len` bytes of compressed or encoded data may inflate to.
pub fn inflate_cap(input_len: u64) -> u64 {
    FLOOR.max(input_len.saturating_mul(MAX_RATIO)).min(budget())
}

/// Checks that `what`, inflated from `input_len` bytes to `bytes`, stays within [`inflate_cap`].
pub fn check_inflate(what: &str, input_len: u64, bytes: u64) -> Result<(), LimitError> {
    let limit = inflate_cap(input_len);
    if bytes <= limit {
        return Ok(());
    }
    Err(LimitError {
        what: format!("{what} (from {})", human(input_len)),
        bytes,
        limit,
        why: if limit < budget() {
            "more than 200× its compressed size, a decompression bomb?"
        } else {
            "the memory budget"
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_and_bounds_inflation() {
        assert_eq!(parse_bytes("4G"), Some(4 << 30));
        assert_eq!(parse_bytes("512m"), Some(512 << 20));
        assert_eq!(parse_bytes("123"), Some(123));
        assert_eq!(parse_bytes("x"), None);
        assert_eq!(parse_bytes("99999999999T"), None);
        assert!(check_inflate("a", 1000, 1 << 20).is_ok());
        let e = check_inflate("bomb.gz", 1 << 20, 1 << 30).unwrap_err().to_string();
        assert!(e.contains("bomb.gz") && e.contains("1.00 GiB"), "{e}");
        assert!(check_alloc("x", None).is_err());
        assert!(check_alloc("x", product(&[1 << 40, 1 << 40])).is_err());
    }
}
