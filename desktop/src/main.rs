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
    /// Zoom factor, such as 1.5 or 2 (Ctrl +/- changes it while running).
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
    scale: f32,
    /// Colour theme (default: as the system says).
    #[arg(long, value_enum, default_value_t = Theme::System)]
    theme: Theme,
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
    state.prefs.zoom = args.scale.clamp(0.5, 3.0);
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
