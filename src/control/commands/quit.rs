//! `QUIT`: `OK`, then the server closes the connection.

use super::Command;

pub fn parse(rest: &[u8]) -> Command<'_> {
    if rest.is_empty() {
        Command::Quit
    } else {
        Command::Invalid
    }
}
