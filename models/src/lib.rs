//! chiplane-models (see README.md).
