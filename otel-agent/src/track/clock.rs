//! Converts kernel `CLOCK_MONOTONIC` timestamps to wall-clock Unix time.

/// Offset between `CLOCK_REALTIME` and `CLOCK_MONOTONIC`, taken once at start.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    offset_ns: i128,
}

fn now_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

impl Clock {
    /// Measure the offset now.
    pub fn new() -> Self {
        let mono = now_ns(libc::CLOCK_MONOTONIC);
        let real = now_ns(libc::CLOCK_REALTIME);
        Self {
            offset_ns: real - mono,
        }
    }

    /// A clock with a fixed offset (tests).
    pub fn with_offset(offset_ns: i128) -> Self {
        Self { offset_ns }
    }

    /// Unix nanoseconds for a kernel monotonic timestamp.
    pub fn to_unix_ns(&self, monotonic_ns: u64) -> u64 {
        let t = i128::from(monotonic_ns) + self.offset_ns;
        u64::try_from(t.max(0)).unwrap_or(u64::MAX)
    }

    /// The current monotonic time in nanoseconds.
    pub fn monotonic_now() -> u64 {
        u64::try_from(now_ns(libc::CLOCK_MONOTONIC)).unwrap_or(0)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// RFC 3339 with nanoseconds in UTC, e.g. `2025-10-23T16:07:41.023379679Z`.
pub fn rfc3339_nanos(unix_ns: u64) -> String {
    Rfc3339(unix_ns).to_string()
}

/// Unix nanoseconds shown as RFC 3339 with nanoseconds in UTC (what
/// [`rfc3339_nanos`] returns), written without allocating.
#[derive(Clone, Copy, Debug)]
pub struct Rfc3339(pub u64);

impl Rfc3339 {
    /// The text as its 30 ASCII bytes: `u64` nanoseconds end in the year
    /// 2554, so the year always has four digits. Written digit by digit:
    /// `write!` with padded fields took ~4 % of the default mode's CPU (perf,
    /// a timestamp on every JSON line).
    pub fn bytes(self) -> [u8; 30] {
        let secs = self.0 / 1_000_000_000;
        let nanos = self.0 % 1_000_000_000;
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
        let (y, mo, d) = civil_from_days(days as i64);
        let mut out = *b"0000-00-00T00:00:00.000000000Z";
        let mut digits = |at: usize, width: usize, mut v: u64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        digits(0, 4, y.clamp(0, 9999) as u64);
        digits(5, 2, u64::from(mo));
        digits(8, 2, u64::from(d));
        digits(11, 2, h);
        digits(14, 2, m);
        digits(17, 2, s);
        digits(20, 9, nanos);
        out
    }
}

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes = self.bytes();
        // ASCII digits and separators only.
        f.write_str(std::str::from_utf8(&bytes).unwrap_or_default())
    }
}

/// Howard Hinnant's days → (year, month, day) for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nanos(1_761_235_661_023_379_679),
            "2025-10-23T16:07:41.023379679Z"
        );
        assert_eq!(
            rfc3339_nanos(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(rfc3339_nanos(u64::MAX), "2554-07-21T23:34:33.709551615Z");
    }

    #[test]
    fn offset_applies() {
        let c = Clock::with_offset(1_000);
        assert_eq!(c.to_unix_ns(5), 1_005);
        assert_eq!(Clock::with_offset(-10).to_unix_ns(5), 0);
    }
}
