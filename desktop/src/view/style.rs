//! Colours, sizes and text shapes shared by the views. Colours come in a light and a dark
//! variant, each with enough contrast on egui's backgrounds to read at a glance.

use eframe::egui::{Color32, CornerRadius, Frame, Margin, RichText, Stroke, Ui};

/// Point size of a current code.
pub const CODE_SIZE: f32 = 36.0;
/// Point size of account names.
pub const ACCOUNT_SIZE: f32 = 17.0;

fn pick(ui: &Ui, light: Color32, dark: Color32) -> Color32 {
    if ui.visuals().dark_mode { dark } else { light }
}

/// The countdown and other calm highlights.
pub fn accent(ui: &Ui) -> Color32 {
    pick(
        ui,
        Color32::from_rgb(20, 95, 190),
        Color32::from_rgb(100, 170, 255),
    )
}

/// A code about to change, a key waiting for a touch.
pub fn warn(ui: &Ui) -> Color32 {
    pick(
        ui,
        Color32::from_rgb(170, 85, 0),
        Color32::from_rgb(255, 185, 70),
    )
}

/// Something worked.
pub fn ok(ui: &Ui) -> Color32 {
    pick(
        ui,
        Color32::from_rgb(20, 120, 50),
        Color32::from_rgb(110, 210, 130),
    )
}

/// Something failed.
pub fn error(ui: &Ui) -> Color32 {
    pick(
        ui,
        Color32::from_rgb(190, 30, 30),
        Color32::from_rgb(255, 120, 110),
    )
}

/// Secondary text.
pub fn weak(ui: &Ui) -> Color32 {
    ui.visuals().weak_text_color()
}

/// The frame around one token.
pub fn card(ui: &Ui, selected: bool) -> Frame {
    let visuals = ui.visuals();
    let stroke = if selected {
        Stroke::new(1.5, accent(ui))
    } else {
        visuals.widgets.noninteractive.bg_stroke
    };
    Frame::NONE
        .fill(visuals.faint_bg_color)
        .stroke(stroke)
        .corner_radius(CornerRadius::same(8))
        .inner_margin(Margin::symmetric(14, 10))
}

/// A banner (touch prompts, the daemon missing).
pub fn banner(color: Color32) -> Frame {
    Frame::NONE
        .fill(color.gamma_multiply(0.12))
        .stroke(Stroke::new(1.0, color))
        .corner_radius(CornerRadius::same(6))
        .inner_margin(Margin::symmetric(12, 8))
}

/// A code split in two halves for reading aloud and typing: `123 456`, `1234 5678`.
pub fn group_digits(code: &str) -> String {
    let n = code.chars().count();
    if n >= 6 && n.is_multiple_of(2) && code.is_ascii() {
        let (a, b) = code.split_at(n / 2);
        format!("{a} {b}")
    } else {
        code.to_owned()
    }
}

/// A code in large digits.
pub fn code_text(code: &str, color: Color32) -> RichText {
    RichText::new(group_digits(code))
        .monospace()
        .size(CODE_SIZE)
        .color(color)
}

/// A form section heading.
pub fn section(ui: &mut Ui, title: &str) {
    ui.add_space(6.0);
    ui.label(RichText::new(title).strong().size(15.0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_in_halves() {
        assert_eq!(group_digits("123456"), "123 456");
        assert_eq!(group_digits("12345678"), "1234 5678");
        assert_eq!(group_digits("1234567"), "1234567");
        assert_eq!(group_digits("12"), "12");
    }
}
