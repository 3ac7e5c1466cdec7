// Printing reports and plots with headless Chromium (Debian's `chromium`; scripts/install-deps.sh
// --browser): HTML to PDF (--print-to-pdf) and to PNG (--screenshot), offline, with a fresh
// profile directory per call that is removed afterwards.
#pragma once

#include <string>

namespace lutdose::report {

//! The Chromium program: $LUTDOSE_CHROMIUM when set (it must then be executable), else the first
//! executable of /usr/bin/chromium, chromium, chromium-browser, google-chrome on PATH; "" when none.
//! Throws nothing.
std::string find_chromium();

//! The message for a missing Chromium: what is needed and how to install it. Throws nothing.
std::string chromium_missing_message();

//! `html` printed to PDF bytes (A4, the page's print CSS). InputError (chromium_missing_message)
//! when there is no Chromium; std::runtime_error when it fails or produces no PDF (its exit status
//! and last output lines in the message), or takes longer than 120 s.
std::string html_to_pdf(const std::string& html);

//! `html` rendered to PNG bytes in a window of width x height CSS pixels. As html_to_pdf.
std::string html_to_png(const std::string& html, int width, int height);

//! `png` with a tEXt chunk `keyword`\0`text` (PNG specification 11.3.4.3) right after its IHDR
//! chunk, so that lutdose can recognise its own PNG later. Throws std::invalid_argument
//! when `png` does not start with the PNG signature and an IHDR chunk (Chromium wrote no PNG).
std::string png_with_text(const std::string& png, const std::string& keyword, const std::string& text);

}  // namespace lutdose::report
