//! Tests of run starts: the settings resolver's precedence and errors (`settings`), and
//! `launch` against a fake server (`start`). The pure parts (resume, layout, settings
//! files) test themselves in their own modules.

mod settings;
mod start;
