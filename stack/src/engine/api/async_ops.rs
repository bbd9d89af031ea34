//! Engine operations for the Winsock face: see the module docs of `api`.
