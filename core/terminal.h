// Text bound for a terminal.
#pragma once

#include <string>

namespace prov {

// `s` as it may reach a terminal: control characters (C0, DEL, C1), bidirectional and other
// invisible format controls (U+061C, U+200B-U+200F, U+202A-U+202E, U+2060-U+2069, U+FEFF) and
// invalid UTF-8 bytes written as visible escapes ("\x1b", "\u{202e}"), so a hostile model or
// file name cannot move the cursor, recolour the screen or reverse the text around it.
std::string shown(const std::string& s);

}  // namespace prov
