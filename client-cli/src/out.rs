//! Standard output that ends quietly when the reader goes away (`oathkey keys | head`): the
//! standard `print!` panics on a broken pipe, which would look like a bug to a script.

use std::io::{ErrorKind, Write};

/// Writes `args` to stdout; a closed pipe ends the process with status 0, as the output was
/// not wanted any more. Other write errors end it with exit code 1.
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("oathkey: cannot write to standard output: {e}");
        std::process::exit(crate::exit::FAILURE.into());
    }
}

/// `print!` that survives a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::write(format_args!($($arg)*)) };
}

/// `println!` that survives a closed pipe.
macro_rules! outln {
    () => { $crate::out::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::write(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {out, outln};
