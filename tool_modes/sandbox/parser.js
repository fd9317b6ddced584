// Evaluated once per worker, after acorn.js, in the worker's parser context: a context that
// only ever parses user code as a string and never runs it.
//
// It turns a script into the source of an async arrow function so that top-level `await` and
// `return` work, and makes the final expression statement the result (also inside a final
// block, if/else or try/catch), the way a REPL does (Node's REPL and Cloudflare's code mode
// use acorn the same way). Working on the parse tree keeps the rewrite exact (strings,
// regexes, comments and ASI cannot fool it), and since the body parsed as a function body it
// cannot close the wrapper early. Offsets are UTF-16, as acorn reports them, so the slicing
// happens here rather than in Python.
(function () {
  "use strict";
  const parse = acorn.parse;
  const options = {
    ecmaVersion: "latest",
    sourceType: "script",
    allowAwaitOutsideFunction: true,
    allowReturnOutsideFunction: true,
    allowHashBang: false,
  };
  // The statements whose value is the script's value: the last one, looking into the last
  // statement of a block and both branches of an if or a try/catch, as a REPL does.
  function finalExpressions(statement, found) {
    if (!statement) return found;
    switch (statement.type) {
      case "ExpressionStatement":
        if (!statement.directive) found.push(statement);
        break;
      case "BlockStatement":
        finalExpressions(statement.body[statement.body.length - 1], found);
        break;
      case "IfStatement":
        finalExpressions(statement.consequent, found);
        finalExpressions(statement.alternate, found);
        break;
      case "TryStatement":
        finalExpressions(statement.block, found);
        if (statement.handler) finalExpressions(statement.handler.body, found);
        break;
    }
    return found;
  }

  return function rewrite(code) {
    const body = parse(code, options).body;
    const targets = finalExpressions(body[body.length - 1], []);
    targets.sort((a, b) => b.start - a.start);
    let out = code;
    for (const s of targets) {
      const e = s.expression;
      out = out.slice(0, s.start) + "{ return (" + code.slice(e.start, e.end) + "); }" + out.slice(s.end);
    }
    return ("(async () => {" + out + "\n})").slice(0); // slice: a flat string, not a rope
  };
})()
