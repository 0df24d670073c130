//! File descriptors: every connection holds one, and a process may hold
//! only so many. At start the soft limit is raised to the hard one; the
//! subscriber port may then fill all of it but a reserve, so that the
//! control port, the admin UI, the database and the logs keep working and
//! the next subscriber gets a `503` instead of an accept that fails.

use tracing::info;

/// Descriptors kept back from subscribers: a little over 1 % of the limit,
/// and at least 64.
pub fn reserve(limit: u64) -> u64 {
    (limit / 64).max(64)
}

/// Raise the soft limit to the hard one; the connections the subscriber
/// port may hold (0: no limit known, as on Windows).
pub fn subscriber_budget() -> u64 {
    let limit = raise_limit();
    if limit == 0 {
        return 0;
    }
    let budget = limit.saturating_sub(reserve(limit));
    info!(limit, subscribers = budget, "file descriptors");
    budget
}

#[cfg(unix)]
// rlim_t is 32 bits wide on 32-bit targets (armv7), 64 elsewhere.
#[allow(clippy::unnecessary_cast)]
fn raise_limit() -> u64 {
    let mut limits = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limits) } != 0 {
        return 0;
    }
    if limits.rlim_max == libc::RLIM_INFINITY {
        // No hard limit: leave the soft one as it is and go by it.
        return limits.rlim_cur as u64;
    }
    if limits.rlim_cur < limits.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limits.rlim_max,
            rlim_max: limits.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limits.rlim_cur = limits.rlim_max;
        } else {
            tracing::warn!(
                soft = limits.rlim_cur,
                hard = limits.rlim_max,
                "cannot raise the limit of open files"
            );
        }
    }
    limits.rlim_cur as u64
}

#[cfg(not(unix))]
fn raise_limit() -> u64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_small_but_never_tiny() {
        assert_eq!(reserve(256), 64);
        assert_eq!(reserve(20_000), 312);
        assert!(20_000 - reserve(20_000) >= 19_500);
    }
}
