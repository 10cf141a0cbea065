//! chiplane-sim (see README.md).
