//! Locking that survives a panic elsewhere: a poisoned mutex still holds consistent data here (every
//! critical section is a few map operations), so the guard is taken rather than the panic spread.

use std::sync::{Mutex, MutexGuard};

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
