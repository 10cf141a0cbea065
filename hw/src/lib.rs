//! chiplane-hw (see README.md).
