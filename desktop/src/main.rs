//! `oathkey-desktop`: the window. Parses the command line, starts the backend threads, and
//! runs eframe with the glow (OpenGL) renderer.
//!
//! # Layout
//! Everything but the command line and the window's options lives in the library
//! (`oathkey_desktop`): see its `//! # Layout`.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use eframe::egui::{self, ThemePreference};
use oathkey_desktop::{AppState, Backend, Clock, DesktopApp};

/// oathkey-desktop: codes of your OTP keys, and the admin tool's form.
///
/// Talks to oathkeyd, which owns the keys.
#[derive(Parser, Debug)]
#[command(name = "oathkey-desktop", version)]
struct Args {
    /// oathkeyd's socket (default: $OATHKEY_SOCKET, a user daemon's socket, then the system one).
    #[arg(long, value_name = "PATH", env = "OATHKEY_SOCKET")]
    socket: Option<PathBuf>,
    /// Zoom factor from 0.5 to 3, such as 1.5 or 2 (Ctrl +/- changes it while running).
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0, value_parser = parse_scale)]
    scale: f32,
    /// Colour theme (default: as the system says).
    #[arg(long, value_enum, default_value_t = Theme::System)]
    theme: Theme,
}

/// The zoom the window offers (Ctrl +/- stays within it); a factor outside it is refused
/// rather than quietly taken as the nearest end.
fn parse_scale(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(f) if (0.5..=3.0).contains(&f) => Ok(f),
        _ => Err("the zoom factor is a number from 0.5 to 3".into()),
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Theme {
    System,
    Light,
    Dark,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OATHKEY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colours for a terminal only: a log file gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let socket = oathkey_desktop::app::socket_path(args.socket);
    let mut state = AppState::new(socket.clone(), Clock::System);
    state.prefs.zoom = args.scale;
    state.prefs.theme = match args.theme {
        Theme::System => ThemePreference::System,
        Theme::Light => ThemePreference::Light,
        Theme::Dark => ThemePreference::Dark,
    };

    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Glow,
        viewport: egui::ViewportBuilder::default()
            .with_title("oathkey")
            .with_app_id("oathkey-desktop")
            .with_inner_size([600.0, 640.0])
            .with_min_inner_size([380.0, 320.0]),
        ..Default::default()
    };
    eframe::run_native(
        "oathkey",
        options,
        Box::new(move |cc| {
            let ctx = cc.egui_ctx.clone();
            let backend = Backend::start(socket, Arc::new(move || ctx.request_repaint()))?;
            let app = DesktopApp::new(state, Some(backend))
                .with_clipboard_check(oathkey_desktop::app::system_clipboard_check());
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context("cannot open the window")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--scale` outside the zoom the window offers was silently taken as 0.5 or 3; it is
    /// refused when the command line is read, as `oathkey activate --window` is.
    #[test]
    fn a_scale_out_of_range_is_refused_not_clamped() {
        for ok in ["0.5", "1", "1.5", "3"] {
            let args = Args::try_parse_from(["oathkey-desktop", "--scale", ok]).expect(ok);
            assert_eq!(args.scale.to_string(), ok);
        }
        for bad in ["0.49", "5", "0", "-1", "NaN", "inf"] {
            let err = Args::try_parse_from(["oathkey-desktop", &format!("--scale={bad}")])
                .expect_err(bad);
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
            assert!(err.to_string().contains("0.5 to 3"), "{bad}: {err}");
        }
    }
}
