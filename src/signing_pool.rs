//! The threads that sign requests, fed by one queue. An RSA signature is a
//! third of a millisecond of CPU, too long for an async thread (it would
//! stall every connection on it). Tokio's blocking pool signed before: it
//! starts a thread whenever none is idle, so with 32 requests in flight
//! some 40 threads took turns on two cores, three context switches a
//! declaration. Here a few threads take the next signature from the queue
//! without sleeping while there is one, and a sender wakes a thread only
//! when one is idle. The clients alive at once share one pool (the page
//! can run and inquire side by side), so a process signs on at most four
//! threads a core, and the threads end with the last client.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

type Job = Box<dyn FnOnce() + Send>;

/// Runs jobs on a fixed set of threads; they stop once the pool is dropped
/// and the jobs already queued are done.
pub struct SigningPool {
    shared: Arc<Shared>,
    threads: usize,
}

struct Shared {
    queue: Mutex<Queue>,
    job_ready: Condvar,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job.
    idle: usize,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A job runs outside the lock, so no panic can poison it; if one
        // did, the queue itself is still whole.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for SigningPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningPool")
            .field("threads", &self.threads)
            .finish()
    }
}

/// Signing threads per core. Measured against the unthrottled run (32
/// requests in flight, two cores): two threads a core or fewer let the
/// queue run dry while the cores served the connections, so threads slept
/// and woke per signature; four a core halved the context switches against
/// tokio's pool and saved 5 % of the run's CPU; more saved no more.
const THREADS_PER_CORE: usize = 4;

/// The pool the clients alive now sign on.
static SHARED_POOL: Mutex<Weak<SigningPool>> = Mutex::new(Weak::new());

impl SigningPool {
    /// The pool a client signs its requests on: the one the other live
    /// clients use, or a new one.
    pub fn for_requests() -> std::io::Result<Arc<SigningPool>> {
        let mut shared = SHARED_POOL.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = shared.upgrade() {
            return Ok(pool);
        }
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let pool = Arc::new(SigningPool::new(cores * THREADS_PER_CORE)?);
        *shared = Arc::downgrade(&pool);
        Ok(pool)
    }

    fn new(threads: usize) -> std::io::Result<SigningPool> {
        SigningPool::starting(threads, |name, run| {
            std::thread::Builder::new().name(name).spawn(run).map(drop)
        })
    }

    /// [`SigningPool::new`], starting each thread with `start`.
    fn starting(
        threads: usize,
        mut start: impl FnMut(String, Box<dyn FnOnce() + Send>) -> std::io::Result<()>,
    ) -> std::io::Result<SigningPool> {
        let threads = threads.max(1);
        // Made before the threads, so that if one cannot start, dropping
        // it ends those that did.
        let pool = SigningPool {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                job_ready: Condvar::new(),
            }),
            threads,
        };
        for _ in 0..threads {
            let shared = Arc::clone(&pool.shared);
            start("signer".into(), Box::new(move || run_jobs(&shared)))?;
        }
        Ok(pool)
    }

    /// Runs `work` on one of the pool's threads and waits for its result
    /// without blocking the async thread.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.submit(Box::new(move || {
            // The caller may have stopped waiting (a run interrupted).
            let _ = sender.send(work());
        }));
        receiver
            .await
            .expect("a job of the signing pool does not panic")
    }

    fn submit(&self, job: Job) {
        let mut queue = self.shared.lock();
        queue.jobs.push_back(job);
        let wake = queue.idle > 0;
        drop(queue);
        if wake {
            self.shared.job_ready.notify_one();
        }
    }
}

impl Drop for SigningPool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.job_ready.notify_all();
    }
}

fn run_jobs(shared: &Shared) {
    loop {
        let job = {
            let mut queue = shared.lock();
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                if queue.closed {
                    return;
                }
                queue.idle += 1;
                queue = shared
                    .job_ready
                    .wait(queue)
                    .unwrap_or_else(|e| e.into_inner());
                queue.idle -= 1;
            }
        };
        // A panicking job drops its result's sender, so its caller learns
        // of it; the thread goes on to the next job.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime")
    }

    #[test]
    fn every_job_runs_once_on_a_signing_thread_and_returns_its_result() {
        let pool = Arc::new(SigningPool::new(3).expect("threads"));
        let results = runtime().block_on(async {
            let jobs: Vec<_> = (0..200u64)
                .map(|n| {
                    let pool = Arc::clone(&pool);
                    tokio::spawn(async move {
                        pool.run(move || (n * n, std::thread::current().name().map(str::to_owned)))
                            .await
                    })
                })
                .collect();
            let mut results = Vec::new();
            for job in jobs {
                let done = tokio::time::timeout(Duration::from_secs(30), job)
                    .await
                    .expect("no job waits forever");
                results.push(done.expect("the task ends"));
            }
            results
        });
        assert_eq!(results.len(), 200);
        for (n, (square, thread)) in results.into_iter().enumerate() {
            assert_eq!(square, (n * n) as u64);
            assert_eq!(thread.as_deref(), Some("signer"));
        }
    }

    #[test]
    fn a_panicking_job_reaches_its_caller_and_its_thread_goes_on() {
        let pool = Arc::new(SigningPool::new(1).expect("threads"));
        let runtime = runtime();
        let panicking = {
            let pool = Arc::clone(&pool);
            runtime.spawn(async move { pool.run(|| -> u8 { panic!("a faulty job") }).await })
        };
        let outcome = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), panicking)
                .await
                .expect("the caller hears of it")
        });
        assert!(outcome.is_err(), "the caller's task ends in a panic");
        // The pool's one thread is still there for the next job.
        let next = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), pool.run(|| 7u8))
                .await
                .expect("the next job runs")
        });
        assert_eq!(next, 7);
    }

    /// Waits until no thread holds the pool's queue any more.
    fn threads_end(shared: &Weak<Shared>) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while shared.strong_count() > 0 {
            assert!(Instant::now() < deadline, "the threads did not end");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn threads_that_started_end_when_another_cannot_start() {
        let (ended, ends) = std::sync::mpsc::channel();
        let mut started = 0;
        let failed = SigningPool::starting(4, |name, run| {
            if started == 2 {
                return Err(std::io::Error::other("no more threads"));
            }
            started += 1;
            let ended = ended.clone();
            std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    run();
                    let _ = ended.send(());
                })
                .map(drop)
        });
        assert!(failed.is_err());
        assert_eq!(started, 2);
        drop(ended);
        for _ in 0..2 {
            ends.recv_timeout(Duration::from_secs(30))
                .expect("a thread that started ends");
        }
    }

    #[test]
    fn clients_alive_at_once_share_one_pool() {
        let first = SigningPool::for_requests().expect("threads");
        let second = SigningPool::for_requests().expect("threads");
        assert!(Arc::ptr_eq(&first, &second));
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(first.threads, cores * THREADS_PER_CORE);
    }

    #[test]
    fn the_threads_finish_the_queued_jobs_and_end_once_the_pool_is_dropped() {
        let pool = SigningPool::new(2).expect("threads");
        let shared = Arc::downgrade(&pool.shared);
        let (done, finished) = std::sync::mpsc::channel();
        for n in 0..50 {
            let done = done.clone();
            pool.submit(Box::new(move || {
                std::thread::sleep(Duration::from_millis(1));
                let _ = done.send(n);
            }));
        }
        drop(done);
        drop(pool);
        // Every job queued before the drop still runs (the results end
        // when the last job's sender is dropped).
        let mut ran = Vec::new();
        while let Ok(n) = finished.recv_timeout(Duration::from_secs(30)) {
            ran.push(n);
        }
        ran.sort_unstable();
        assert_eq!(ran, (0..50).collect::<Vec<_>>());
        // Each thread holds the shared queue until it ends.
        threads_end(&shared);
    }
}
