// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Testing

@testable import MoERoutingReport

struct HTMLEscapingTests {
    @Test func escapesMarkupAndQuotes() {
        #expect(HTMLEscaping.escape(#"<script>&"'"#) == "&lt;script&gt;&amp;&quot;&#39;")
        #expect(HTMLEscaping.escape("3→5→1 é") == "3→5→1 é")
        #expect(HTMLEscaping.escape("a\u{1}b\u{0}\tc\n") == "a\u{FFFD}b\u{FFFD}\tc\n")
        #expect(HTMLEscaping.escape("&amp;") == "&amp;amp;")
    }

    @Test func truncatesWithEllipsis() {
        #expect(HTMLEscaping.truncated("abcdef", to: 4) == "abc…")
        #expect(HTMLEscaping.truncated("abc", to: 4) == "abc")
        #expect(HTMLEscaping.estimatedWidth("abcd", fontSize: 10) == 24)
    }
}
