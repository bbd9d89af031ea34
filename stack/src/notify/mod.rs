//! Notification and asynchronous I/O machinery shared by the engine and the Winsock face:
//! event objects, completion-routine queues, FD_ network events and overlapped operations.
//!
//! Read first: CHECKLIST §1.6 and Part 3 #1–#4.
#![allow(non_snake_case)]

pub(crate) mod apc;
pub(crate) mod event;
pub(crate) mod fd;
pub(crate) mod overlapped;
