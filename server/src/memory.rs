//! How the process takes memory from the kernel: in small (4 KiB) pages only.
//!
//! With transparent huge pages, the first touch of a fresh 2 MiB region makes the kernel zero
//! all of it at once. Sockets come and go in bursts and each holds a few KiB, so huge pages
//! cost more zeroing than they save in TLB misses: measured with `channel-bench` (2026-12-05,
//! 2 cores, kernel THP setting `madvise`), server CPU per 1 000 socket connects went from
//! 46–47 ms to 36–37 ms with them off. (Redis advises the same, for latency and memory.)

/// Turns transparent huge pages off for this process (Linux; elsewhere nothing to do). The
/// allocator is also built not to ask for them (`no_thp`); this covers kernels set to use
/// them for every large mapping (`always`). Failure only costs speed: logged at start.
pub fn small_pages_only() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    unsafe {
        if libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0 {
            eprintln!(
                "parlor: could not turn transparent huge pages off: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}
