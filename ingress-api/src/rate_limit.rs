//! GCRA (the generic cell rate algorithm): a rate limit kept as one number per client, the
//! *theoretical arrival time* (TAT) of its next request.
//!
//! With emission interval `T = 1 s / rate` and burst `b`, a request at `now` is allowed when
//! `max(TAT, now) - now <= T * (b - 1)`; it then moves TAT to `max(TAT, now) + T`. A client
//! that waits long enough gets its whole burst back, and never more. A refused request does not
//! move TAT, and learns exactly how long to wait.

/// A limit: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub per_second: u32,
    pub burst: u32,
}

impl Quota {
    /// `T`, in microseconds (integer math keeps the check exact and portable to Redis).
    pub fn emission_interval_micros(&self) -> i64 {
        1_000_000 / i64::from(self.per_second.max(1))
    }

    /// `T * (b - 1)`: how far ahead of now TAT may run.
    pub fn tolerance_micros(&self) -> i64 {
        self.emission_interval_micros() * i64::from(self.burst.max(1) - 1)
    }
}

/// The decision on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; store the new TAT.
    Allow { new_tat_micros: i64 },
    /// Refused; retry after this many microseconds.
    Deny { retry_after_micros: i64 },
}

/// Decides one request at `now_micros` given the stored TAT (none: a new client).
pub fn check(quota: Quota, tat_micros: Option<i64>, now_micros: i64) -> Decision {
    let interval = quota.emission_interval_micros();
    let tat = tat_micros.unwrap_or(now_micros).max(now_micros);
    let ahead = tat - now_micros;
    let tolerance = quota.tolerance_micros();
    if ahead > tolerance {
        Decision::Deny {
            retry_after_micros: ahead - tolerance,
        }
    } else {
        Decision::Allow {
            new_tat_micros: tat + interval,
        }
    }
}

/// Seconds for a `Retry-After` header: rounded up, at least 1.
pub fn retry_after_seconds(retry_after_micros: i64) -> u64 {
    (retry_after_micros.max(1) as u64).div_ceil(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_new_client_gets_its_burst_then_waits_one_interval() {
        let quota = Quota {
            per_second: 10,
            burst: 3,
        };
        let mut tat = None;
        for _ in 0..3 {
            match check(quota, tat, 0) {
                Decision::Allow { new_tat_micros } => tat = Some(new_tat_micros),
                Decision::Deny { .. } => panic!("the burst is allowed"),
            }
        }
        assert_eq!(
            check(quota, tat, 0),
            Decision::Deny {
                retry_after_micros: 100_000
            }
        );
        assert!(matches!(check(quota, tat, 100_000), Decision::Allow { .. }));
        assert_eq!(retry_after_seconds(100_000), 1);
        assert_eq!(retry_after_seconds(1_000_001), 2);
    }

    proptest! {
        /// Over any window, allowed requests never exceed `burst + rate * window`.
        #[test]
        fn allowed_requests_never_exceed_burst_plus_rate(
            per_second in 1u32..50,
            burst in 1u32..20,
            gaps in proptest::collection::vec(0i64..200_000, 1..300),
        ) {
            let quota = Quota { per_second, burst };
            let mut tat = None;
            let mut now = 0;
            let mut allowed_times = Vec::new();
            for gap in gaps {
                now += gap;
                if let Decision::Allow { new_tat_micros } = check(quota, tat, now) {
                    tat = Some(new_tat_micros);
                    allowed_times.push(now);
                }
            }
            let interval = quota.emission_interval_micros();
            for (start_index, start) in allowed_times.iter().enumerate() {
                for (end_index, end) in allowed_times.iter().enumerate().skip(start_index) {
                    let count = (end_index - start_index + 1) as i64;
                    let window = end - start;
                    prop_assert!(count <= i64::from(burst) + window / interval);
                }
            }
        }

        /// A refused client that waits exactly `retry_after` is allowed.
        #[test]
        fn waiting_the_retry_after_is_enough(
            per_second in 1u32..50,
            burst in 1u32..20,
            requests in 1usize..100,
        ) {
            let quota = Quota { per_second, burst };
            let mut tat = None;
            for _ in 0..requests {
                if let Decision::Allow { new_tat_micros } = check(quota, tat, 0) {
                    tat = Some(new_tat_micros);
                }
            }
            if let Decision::Deny { retry_after_micros } = check(quota, tat, 0) {
                let allowed = matches!(check(quota, tat, retry_after_micros), Decision::Allow { .. });
                prop_assert!(allowed);
            }
        }
    }
}
