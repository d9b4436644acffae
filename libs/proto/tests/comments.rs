//! Every service, RPC, message, field, oneof, enum and enum value in `proto/`
//! carries a comment: SDK users read the protos (and the code
//! generated from them) as the API's reference, so an undocumented element is
//! a gap in the contract. Fails with the list of what is missing.

use prost::Message;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};
use std::collections::HashMap;

// Field numbers of google/protobuf/descriptor.proto, which SourceCodeInfo
// paths are made of.
const FILE_MESSAGE: i32 = 4;
const FILE_ENUM: i32 = 5;
const FILE_SERVICE: i32 = 6;
const MESSAGE_FIELD: i32 = 2;
const MESSAGE_NESTED: i32 = 3;
const MESSAGE_ENUM: i32 = 4;
const MESSAGE_ONEOF: i32 = 8;
const ENUM_VALUE: i32 = 2;
const SERVICE_METHOD: i32 = 2;

struct Walk<'a> {
    comments: HashMap<Vec<i32>, String>,
    file: &'a str,
    missing: Vec<String>,
    total: usize,
}

impl Walk<'_> {
    fn check(&mut self, path: &[i32], name: &str) {
        self.total += 1;
        let documented = self.comments.get(path).is_some_and(|c| !c.trim().is_empty());
        if !documented {
            self.missing.push(format!("{}: {name}", self.file));
        }
    }

    fn message(&mut self, path: Vec<i32>, scope: &str, message: &DescriptorProto) {
        let name = format!("{scope}.{}", message.name());
        // Map entries are synthesised by protoc; the map field itself carries
        // the comment.
        if message.options.as_ref().is_some_and(|o| o.map_entry()) {
            return;
        }
        self.check(&path, &name);
        for (i, field) in message.field.iter().enumerate() {
            self.check(&[path.as_slice(), &[MESSAGE_FIELD, i as i32]].concat(), &format!("{name}.{}", field.name()));
        }
        for (i, oneof) in message.oneof_decl.iter().enumerate() {
            // proto3 `optional` makes a synthetic oneof named `_<field>`.
            let synthetic = message.field.iter().any(|f| f.proto3_optional() && f.oneof_index == Some(i as i32));
            if !synthetic {
                self.check(&[path.as_slice(), &[MESSAGE_ONEOF, i as i32]].concat(), &format!("{name}.{}", oneof.name()));
            }
        }
        for (i, nested) in message.nested_type.iter().enumerate() {
            self.message([path.as_slice(), &[MESSAGE_NESTED, i as i32]].concat(), &name, nested);
        }
        for (i, e) in message.enum_type.iter().enumerate() {
            self.enumeration([path.as_slice(), &[MESSAGE_ENUM, i as i32]].concat(), &name, e);
        }
    }

    fn enumeration(&mut self, path: Vec<i32>, scope: &str, e: &EnumDescriptorProto) {
        let name = format!("{scope}.{}", e.name());
        self.check(&path, &name);
        for (i, value) in e.value.iter().enumerate() {
            self.check(&[path.as_slice(), &[ENUM_VALUE, i as i32]].concat(), &format!("{name}.{}", value.name()));
        }
    }
}

#[test]
fn every_element_of_the_protos_is_documented() {
    let set = FileDescriptorSet::decode(paved_proto::FILE_DESCRIPTOR_SET).expect("descriptor set decodes");
    let mut missing = Vec::new();
    let mut total = 0;
    for file in set.file.iter().filter(|f| f.package().starts_with("paved.")) {
        let info = file.source_code_info.as_ref().expect("protox keeps source info");
        let comments = info
            .location
            .iter()
            .filter_map(|l| {
                // A trailing comment (`int32 x = 1; // …`) documents as well:
                // the code generators carry both into the generated docs.
                let text = [l.leading_comments(), l.trailing_comments()].concat();
                (!text.trim().is_empty()).then(|| (l.path.clone(), text))
            })
            .collect();
        let mut walk = Walk { comments, file: file.name(), missing: Vec::new(), total: 0 };
        let package = file.package();
        for (i, message) in file.message_type.iter().enumerate() {
            walk.message(vec![FILE_MESSAGE, i as i32], package, message);
        }
        for (i, e) in file.enum_type.iter().enumerate() {
            walk.enumeration(vec![FILE_ENUM, i as i32], package, e);
        }
        for (i, service) in file.service.iter().enumerate() {
            let name = format!("{package}.{}", service.name());
            walk.check(&[FILE_SERVICE, i as i32], &name);
            for (j, method) in service.method.iter().enumerate() {
                walk.check(&[FILE_SERVICE, i as i32, SERVICE_METHOD, j as i32], &format!("{name}.{}", method.name()));
            }
        }
        missing.extend(walk.missing);
        total += walk.total;
    }
    assert!(total > 500, "the walk found only {total} elements; is the descriptor set complete?");
    assert!(missing.is_empty(), "{} of {total} elements of proto/ have no comment:\n  {}", missing.len(), missing.join("\n  "));
}
