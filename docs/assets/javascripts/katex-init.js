// Render the formulas with the KaTeX files the site serves itself (docs/assets/katex/).
// pymdownx.arithmatex (generic mode) writes \( ... \) and \[ ... \] inside .arithmatex
// elements; only those are rendered, so a "$" in prose stays a dollar sign.
document$.subscribe(({ body }) => {
  body.querySelectorAll(".arithmatex").forEach((element) =>
    renderMathInElement(element, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true },
      ],
      throwOnError: false,
    })
  );
});
