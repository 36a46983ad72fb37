//! A JMeter plan read into a tree: test elements with their properties and children, each
//! with the line it starts on, so every diagnostic about a plan can name its line.
//!
//! JMeter writes a plan as nested `<hashTree>`s: an element is followed by a `<hashTree>` that
//! holds its children. Properties (`stringProp`, `boolProp`, `intProp`, `longProp`,
//! `elementProp`, `collectionProp`) sit inside the element.

use quick_xml::events::Event;

/// A test element (`ThreadGroup`, `HTTPSamplerProxy`, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    pub tag: String,
    pub testname: String,
    pub enabled: bool,
    pub line: u32,
    pub props: Vec<Prop>,
    pub children: Vec<Element>,
}

/// A property: a value, or a nested element or collection of properties.
#[derive(Clone, Debug, PartialEq)]
pub struct Prop {
    /// `stringProp`, `boolProp`, `elementProp`, `collectionProp`, ...
    pub kind: String,
    pub name: String,
    pub value: String,
    pub line: u32,
    pub nested: Vec<Prop>,
}

impl Element {
    /// The text of the property `name` (directly on the element).
    pub fn prop(&self, name: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }

    /// The nested property `name` (an `elementProp` or `collectionProp`).
    pub fn nested(&self, name: &str) -> Option<&Prop> {
        self.props.iter().find(|p| p.name == name)
    }

    pub fn flag(&self, name: &str) -> Option<bool> {
        self.prop(name).map(|v| v.trim() == "true")
    }
}

impl Prop {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.nested
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&Prop> {
        self.nested.iter().find(|p| p.name == name)
    }
}

/// Why a plan could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct XmlError {
    pub line: u32,
    pub message: String,
}

/// A generic XML node while reading.
#[derive(Debug, Default)]
struct Raw {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    line: u32,
    children: Vec<Raw>,
}

impl Raw {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a `.jmx` document: the test plan's top elements (the `TestPlan` and what follows it).
pub fn read(text: &str) -> Result<Vec<Element>, XmlError> {
    let lines: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |offset: usize| -> u32 {
        u32::try_from(lines.partition_point(|&start| start <= offset)).unwrap_or(u32::MAX)
    };
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Raw> = vec![Raw::default()];
    loop {
        let at = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader.read_event().map_err(|e| XmlError {
            line: line_of(usize::try_from(reader.error_position()).unwrap_or(at)),
            message: e.to_string(),
        })?;
        let start = |e: &quick_xml::events::BytesStart<'_>| -> Result<Raw, XmlError> {
            let mut attrs = Vec::new();
            for a in e.attributes() {
                let a = a.map_err(|e| XmlError {
                    line: line_of(at),
                    message: e.to_string(),
                })?;
                let value = a
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|e| XmlError {
                        line: line_of(at),
                        message: e.to_string(),
                    })?
                    .into_owned();
                attrs.push((String::from_utf8_lossy(a.key.as_ref()).into_owned(), value));
            }
            Ok(Raw {
                name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                attrs,
                line: line_of(at + text[at..].find('<').unwrap_or(0)),
                ..Raw::default()
            })
        };
        match event {
            Event::Start(e) => stack.push(start(&e)?),
            Event::Empty(e) => {
                let node = start(&e)?;
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(node);
                }
            }
            Event::End(_) => {
                let node = stack.pop().unwrap_or_default();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => {
                        return Err(XmlError {
                            line: line_of(at),
                            message: "an end tag without its start".to_owned(),
                        });
                    }
                }
            }
            Event::Text(t) => {
                if let Some(node) = stack.last_mut() {
                    let decoded = t.decode().map_err(|e| XmlError {
                        line: line_of(at),
                        message: e.to_string(),
                    })?;
                    let unescaped =
                        quick_xml::escape::unescape(&decoded).map_err(|e| XmlError {
                            line: line_of(at),
                            message: e.to_string(),
                        })?;
                    node.text.push_str(&unescaped);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(node) = stack.last_mut() {
                    let name = String::from_utf8_lossy(r.as_ref()).into_owned();
                    let entity = format!("&{name};");
                    let text = quick_xml::escape::unescape(&entity)
                        .map(|c| c.into_owned())
                        .unwrap_or(entity);
                    node.text.push_str(&text);
                }
            }
            Event::CData(c) => {
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let root = stack.pop().unwrap_or_default();
    if !stack.is_empty() {
        return Err(XmlError {
            line: line_of(text.len()),
            message: "the document ends inside an element".to_owned(),
        });
    }
    let Some(plan) = root.children.iter().find(|c| c.name == "jmeterTestPlan") else {
        return Err(XmlError {
            line: 1,
            message: "not a JMeter plan: there is no <jmeterTestPlan>".to_owned(),
        });
    };
    let tree = plan
        .children
        .iter()
        .find(|c| c.name == "hashTree")
        .map(elements)
        .unwrap_or_default();
    Ok(tree)
}

/// The elements of a `<hashTree>`: each followed by the `<hashTree>` of its children.
fn elements(tree: &Raw) -> Vec<Element> {
    let mut out: Vec<Element> = Vec::new();
    for node in &tree.children {
        if node.name == "hashTree" {
            if let Some(last) = out.last_mut() {
                last.children = elements(node);
            }
            continue;
        }
        out.push(Element {
            tag: node.name.clone(),
            testname: node.attr("testname").unwrap_or_default().to_owned(),
            enabled: node.attr("enabled") != Some("false"),
            line: node.line,
            props: node.children.iter().map(prop).collect(),
            children: Vec::new(),
        });
    }
    out
}

fn prop(node: &Raw) -> Prop {
    Prop {
        kind: node.name.clone(),
        name: node.attr("name").unwrap_or_default().to_owned(),
        value: node.text.clone(),
        line: node.line,
        nested: node.children.iter().map(prop).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_props_children_and_lines() {
        let text = r#"<?xml version="1.0" encoding="UTF-8"?>
<jmeterTestPlan version="1.2">
  <hashTree>
    <TestPlan testclass="TestPlan" testname="Plan" enabled="true">
      <boolProp name="TestPlan.functional_mode">false</boolProp>
    </TestPlan>
    <hashTree>
      <ThreadGroup testclass="ThreadGroup" testname="Users &amp; more" enabled="true">
        <stringProp name="ThreadGroup.num_threads">4</stringProp>
        <elementProp name="ThreadGroup.main_controller" elementType="LoopController">
          <stringProp name="LoopController.loops">3</stringProp>
        </elementProp>
      </ThreadGroup>
      <hashTree>
        <HTTPSamplerProxy testname="one" enabled="false">
          <stringProp name="HTTPSampler.path">/a?x=1&amp;y=2</stringProp>
        </HTTPSamplerProxy>
        <hashTree/>
      </hashTree>
    </hashTree>
  </hashTree>
</jmeterTestPlan>
"#;
        let tree = read(text).unwrap();
        assert_eq!(tree.len(), 1);
        let plan = &tree[0];
        assert_eq!((plan.tag.as_str(), plan.line), ("TestPlan", 4));
        let group = &plan.children[0];
        assert_eq!(group.testname, "Users & more");
        assert_eq!(group.line, 8);
        assert_eq!(group.prop("ThreadGroup.num_threads"), Some("4"));
        let loops = group.nested("ThreadGroup.main_controller").unwrap();
        assert_eq!(loops.get("LoopController.loops"), Some("3"));
        let sampler = &group.children[0];
        assert!(!sampler.enabled);
        assert_eq!(sampler.prop("HTTPSampler.path"), Some("/a?x=1&y=2"));
        assert_eq!(sampler.line, 15);
        let broken = read("<jmeterTestPlan><hashTree>\n<TestPlan>\n</jmeterTestPlan>");
        assert!(broken.is_err());
    }
}
