//! Flowspecs, token buckets, the egress scheduler and admission control (sans-IO).
//!
//! Read first: Windows Sockets 2 §"Quality of Service" and the `FLOWSPEC`/`QOS` reference
//! entries (`shared/spec/003_…`), CHECKLIST §1.8. Nothing here reads a clock or makes a syscall:
//! every entry point takes `now`.
//!
//! Status: the crate is reserved for issue 4 (QoS); the foundation issue only creates it.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod admission;
pub mod bucket;
pub mod flowspec;
pub mod scheduler;
pub mod templates;

pub use admission::{Admission, AdmissionError, LinkKind};
pub use bucket::{ethernet_frame_len, Shape, TokenBucket, DEFAULT_MAX_FRAME};
pub use flowspec::{
    BufferError, Direction, Flowspec, FlowspecError, FlowspecField, Guarantee, Qos, QosError,
};
pub use scheduler::{
    shaping_workload, Class, FlowConfig, FlowId, GroupId, Rejected, Scheduler, SchedulerError,
};
pub use templates::{template, template_names};
