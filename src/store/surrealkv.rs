//! Settling a SurrealKV directory after a crash, before SurrealDB opens it.
//!
//! SurrealKV 0.21.4 (the engine of SurrealDB 3.3.5) writes its log in 32 KiB blocks and splits a
//! record that crosses a block boundary into fragments. A `SIGKILL` can leave the first fragment on
//! disk without the rest. Recovery reads such a tail as the end of the log (nothing is lost: that
//! transaction was never acknowledged), but the next run then *appends* to the same log file, after
//! the torn fragment. After a second crash, recovery finds a complete record where the fragment's
//! continuation should be, calls the file corrupt, and truncates it at the fragment: every
//! transaction acknowledged during the run in between is gone. The reliability suite's crash test
//! caught this as an order answered 201 and missing after the second kill.
//!
//! The remedy here uses SurrealKV's own clean close: open the directory with the engine directly
//! (which recovers the log into memory), write one deletion of a key outside SurrealDB's key space
//! (so there is always something to flush), and close. Closing flushes everything recovered to a
//! sorted table, marks the log as consumed and deletes it, so SurrealDB starts on a fresh log file
//! and no torn tail can sit in front of new writes. On a directory that was closed cleanly this
//! costs a few milliseconds.

use std::path::Path;

use anyhow::Context as _;

/// A key SurrealDB never uses: all of its keys start with `/`.
const SETTLE_KEY: &[u8] = b"\xffstorefront/settle";

/// Recovers and cleanly closes the SurrealKV store in `dir`, if there is one.
pub async fn settle(dir: &Path) -> anyhow::Result<()> {
    if !dir.join("wal").is_dir() {
        return Ok(());
    }
    // The options that decide the on-disk format are SurrealDB 3.3.5's defaults (separate value log
    // for values of 4 KiB and more, 64 KiB blocks, no versioning); caches are kept small for this
    // short visit.
    let tree = surrealkv::TreeBuilder::new()
        .with_path(dir.to_path_buf())
        .with_enable_vlog(true)
        .with_vlog_value_threshold(4 * 1024)
        .with_block_size(64 * 1024)
        .with_versioning(false, 0)
        .with_block_cache_capacity(4 * 1024 * 1024)
        .with_flush_on_close(true)
        .build()
        .with_context(|| format!("recovering the SurrealKV store in {}", dir.display()))?;
    let written = async {
        let mut txn = tree.begin()?;
        txn.delete(SETTLE_KEY)?;
        txn.commit().await
    }
    .await;
    let closed = tree.close().await;
    written.with_context(|| format!("writing to the SurrealKV store in {}", dir.display()))?;
    closed.with_context(|| format!("closing the SurrealKV store in {}", dir.display()))?;
    Ok(())
}
