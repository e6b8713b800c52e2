//! The dashboard over real HTTP: its JSON API, its live events, its refusals, and the page in a
//! real (headless) browser.

mod api;
mod browser;
mod doors;
mod support;
