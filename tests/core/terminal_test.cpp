#include "core/terminal.h"

#include <gtest/gtest.h>

namespace prov {
namespace {

TEST(Terminal, ControlAndBidiCharactersBecomeVisibleEscapes) {
  EXPECT_EQ(shown("plain name-1.bin"), "plain name-1.bin");
  EXPECT_EQ(shown("caf\xc3\xa9 \xe4\xb8\xad"), "caf\xc3\xa9 \xe4\xb8\xad");  // UTF-8 stays
  EXPECT_EQ(shown("\x1b[31mred"), "\\x1b[31mred");                          // ESC
  EXPECT_EQ(shown("a\nb\tc\x7f"), "a\\x0ab\\x09c\\x7f");
  EXPECT_EQ(shown("evil\xe2\x80\xaetxt.exe"), "evil\\u{202e}txt.exe");  // U+202E
  EXPECT_EQ(shown("\xe2\x81\xa6x\xe2\x81\xa9"), "\\u{2066}x\\u{2069}");  // isolates
  EXPECT_EQ(shown("\xc2\x9b" "2J"), "\\u{009b}2J");                      // C1 CSI
  EXPECT_EQ(shown("\xef\xbb\xbf"), "\\u{feff}");
  EXPECT_EQ(shown("bad\xff\xc0\x80"), "bad\\xff\\xc0\\x80");  // invalid and overlong bytes
  EXPECT_EQ(shown("\xe2\x80"), "\\xe2\\x80");                 // truncated sequence
}

}  // namespace
}  // namespace prov
