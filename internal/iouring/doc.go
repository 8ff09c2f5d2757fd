// Package iouring flushes files through a Linux io_uring: Datasync submits an fdatasync to the
// kernel's async workers and waits for its completion on an eventfd in Go's network poller.
//
// Why: an fdatasync is a blocking system call of a fraction of a millisecond to a few
// milliseconds, and a goroutine in a blocking system call keeps its P (one of GOMAXPROCS) until
// sysmon takes it back, at its second look (sysmon sleeps 20 µs to 10 ms between looks). On two
// cores the usage journal's group fsyncs, several hundred a second at full load, left the cores
// idle 8-12 % of the time (vmstat's iowait) while requests waited to run. Waiting in the poller
// frees the P at once, as a network read does: the lean gateway's max req/s rose by about a
// sixth (imagegw-load, alternating builds).
//
// The price is latency: the flush goes through an async worker thread and its completion is
// noticed when a P next polls the network, so one flush takes longer than an fdatasync, more so
// when every P is busy (then sysmon polls, every 10 ms, and the waiter queues behind every
// runnable goroutine). A waiter therefore also wakes on a timer every 2 ms to look at the ring.
// The usage journal flushes through the ring while busy or while its fsyncs are slow, and calls
// fdatasync itself for short ones, which hold a P for less than the ring's hops would add (see
// usage's datasync).
//
// New fails (errors.ErrUnsupported, or the kernel's refusal: an old kernel, io_uring disabled by
// sysctl or a seccomp filter) where there is no io_uring; callers then call fdatasync themselves.
package iouring
