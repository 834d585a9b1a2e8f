//! The bare parser, on any text: the tree it builds is well formed (parents
//! before children, sibling links that agree, spans on character boundaries),
//! and reading it back — text, attributes, character references — never
//! panics.

#![no_main]

use anno_extract::dom::{NONE, NodeData, NodeId, ROOT};
use anno_extract::{entities, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data).into_owned();
    let len = src.len();
    let dom = parse::parse(src);
    assert!(dom.len() <= len + 1, "{} nodes from {len} bytes", dom.len());
    assert_eq!(dom.node(ROOT).parent, NONE);
    let mut children = 0;
    for id in 0..dom.len() as NodeId {
        let node = dom.node(id);
        if id != ROOT {
            assert!(node.parent < id, "node {id} has parent {}", node.parent);
        }
        let mut last = NONE;
        for child in dom.children(id) {
            assert_eq!(dom.node(child).parent, id);
            last = child;
            children += 1;
        }
        assert_eq!(node.last_child, last);
        match node.data {
            NodeData::Text(range) => {
                assert!(!range.is_empty());
                let text = dom.source().get(range.start as usize..range.end as usize);
                assert!(text.is_some(), "text {range:?} is not on character boundaries");
                let _ = dom.text(id);
            }
            NodeData::Element { name, .. } => {
                assert!(dom.source().get(name.start as usize..name.end as usize).is_some());
                for attr in dom.attrs(id) {
                    let name = dom.source().get(attr.name.start as usize..attr.name.end as usize);
                    let value = dom.source().get(attr.value.start as usize..attr.value.end as usize);
                    assert!(name.is_some() && value.is_some(), "attribute {attr:?} off character boundaries");
                    let _ = entities::decode_attribute(value.unwrap_or_default());
                }
                let _ = dom.name(id);
            }
            NodeData::Document => assert_eq!(id, ROOT),
        }
    }
    assert_eq!(children, dom.len() - 1, "every node but the root is some node's child, once");
    assert_eq!(dom.descendants(ROOT).count(), dom.len() - 1);
});
