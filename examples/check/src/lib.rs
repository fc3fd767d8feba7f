//! Checks of the ecosystem examples under `examples/`; the tests are in `tests/`.
#![deny(missing_docs)]
