//! The reliability suite (issue #6): SPEC.md's promises tried under load, faults and hostile input.
//! Every test prints what it tried and what held (see `report`); RELIABILITY.md lists them with the
//! figures of the last run.

mod authz;
mod cart_races;
mod category_races;
mod crash;
mod hardening;
mod hostile;
mod oversell;
mod redis_faults;
pub mod report;
mod tokens;
mod torn_log;
mod variant_oversell;
