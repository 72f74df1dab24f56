// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Testing

@testable import MoERoutingReport

struct IDAllocatorTests {
    @Test func keepsValidNamesAndDeduplicates() {
        var ids = IDAllocator()
        #expect(ids.claim("transition") == "transition")
        #expect(ids.claim("transition") == "transition-2")
        #expect(ids.claim("transition") == "transition-3")
        #expect(ids.claim("a b<\"") == "a-b--")
        #expect(ids.claim("") == "section")
        #expect(ids.claim("é") == "-")
        #expect(ids.fresh("moe-grad") == "moe-grad-1")
        #expect(ids.claim("moe-grad-2") == "moe-grad-2")
        #expect(ids.fresh("moe-grad") == "moe-grad-2-2")
    }
}
