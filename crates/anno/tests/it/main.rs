//! End-to-end tests of the platform through its public API, in both shapes:
//! embedded (one process, SQLite) and distributed (five services on their own
//! ports, Postgres and Redis).

mod audit;
mod cli;
mod config;
mod content;
mod crawl;
mod distributed;
mod flows;
mod harness;
mod idempotency;
mod limits;
mod scale;
mod site;

/// Runs each named scenario (`async fn(&Platform)`) once per shape.
#[macro_export]
macro_rules! in_both_shapes {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let platform = $crate::harness::Platform::embedded().await;
                    super::$name(&platform).await;
                    platform.finish().await;
                }
            )*
        }
        mod distributed {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(platform) = $crate::harness::Platform::distributed(1).await else { return };
                    super::$name(&platform).await;
                    platform.finish().await;
                }
            )*
        }
    };
}
