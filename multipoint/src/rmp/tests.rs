//! Tests for docs/rmp.md §2–§9 (wire, conn, session).
