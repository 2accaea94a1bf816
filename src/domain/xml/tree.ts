/**
 * The ordered tree of an XML document: elements with their attributes (in document order,
 * values decoded), text (decoded) and comments, exactly in the order libvirt wrote them.
 * Everything a caller does not touch is serialized back as it was.
 */

export class XmlText {
  readonly kind = 'text';
  constructor(public value: string) {}
}

export class XmlComment {
  readonly kind = 'comment';
  /** The comment's content as written (comments have no escaping). */
  constructor(public value: string) {}
}

export type XmlNode = XmlElement | XmlText | XmlComment;

export class XmlElement {
  readonly kind = 'element';
  readonly attributes: Map<string, string>;
  children: XmlNode[];

  constructor(
    public name: string,
    attributes: Iterable<readonly [string, string]> | Record<string, string> = {},
    children: XmlNode[] = [],
  ) {
    this.attributes = new Map(
      Symbol.iterator in attributes
        ? (attributes as Iterable<readonly [string, string]>)
        : Object.entries(attributes as Record<string, string>),
    );
    this.children = children;
  }

  /** The child elements, or those named `name`. */
  elements(name?: string): XmlElement[] {
    return this.children.filter(
      (c): c is XmlElement => c.kind === 'element' && (name === undefined || c.name === name),
    );
  }

  /** The first child element named `name`. */
  first(name: string): XmlElement | undefined {
    return this.children.find((c): c is XmlElement => c.kind === 'element' && c.name === name);
  }

  /** The element at a path of child names below this one (first match at each step). */
  at(...path: string[]): XmlElement | undefined {
    const [name, ...rest] = path;
    if (name === undefined) return this;
    return this.first(name)?.at(...rest);
  }

  attr(name: string): string | undefined {
    return this.attributes.get(name);
  }

  /** Sets (or adds, last) an attribute; the serializer escapes it. */
  setAttr(name: string, value: string): this {
    this.attributes.set(name, value);
    return this;
  }

  removeAttr(name: string): this {
    this.attributes.delete(name);
    return this;
  }

  /** The element's own text (not its descendants'), decoded. */
  text(): string {
    return this.children.map((c) => (c.kind === 'text' ? c.value : '')).join('');
  }

  /** Makes the text the element's only content. */
  setText(value: string): this {
    this.children = [new XmlText(value)];
    return this;
  }

  /** The white space before the i-th child, when only white space precedes it on its line. */
  private indentOf(i: number): string | undefined {
    const before = this.children[i - 1];
    return before?.kind === 'text' && before.value.trim() === '' ? before.value : undefined;
  }

  /** Removes child nodes, each with the white space that indents it. */
  remove(...nodes: XmlNode[]): this {
    for (const node of nodes) {
      const i = this.children.indexOf(node);
      if (i < 0) continue;
      const indented = this.indentOf(i) !== undefined;
      this.children.splice(indented ? i - 1 : i, indented ? 2 : 1);
    }
    return this;
  }

  /** Inserts child nodes right before `ref` (a child of this element), each indented like `ref`. */
  insertBefore(ref: XmlNode, ...nodes: XmlNode[]): this {
    const i = this.children.indexOf(ref);
    if (i < 0) throw new Error(`<${this.name}> has no such child`);
    const indent = this.indentOf(i);
    const added = nodes.flatMap((n) => (indent === undefined ? [n] : [n, new XmlText(indent)]));
    this.children.splice(i, 0, ...added);
    return this;
  }

  /**
   * Inserts child nodes right after `ref` (a child of this element), each indented like
   * `ref` when white space indents it.
   */
  insertAfter(ref: XmlNode, ...nodes: XmlNode[]): this {
    const i = this.children.indexOf(ref);
    if (i < 0) throw new Error(`<${this.name}> has no such child`);
    const indent = this.indentOf(i);
    const added = nodes.flatMap((n) => (indent === undefined ? [n] : [new XmlText(indent), n]));
    this.children.splice(i + 1, 0, ...added);
    return this;
  }
}

/** A parsed document: an optional XML declaration, its one root element and any comments around it. */
export interface XmlDocument {
  /** Attributes of `<?xml …?>`, when the document has one. */
  declaration?: Map<string, string> | undefined;
  /** Top-level nodes in order: the root element and comments. */
  top: Array<XmlElement | XmlComment>;
  root: XmlElement;
  /** White space before the first node and after the last, as written. */
  leading: string;
  trailing: string;
}
