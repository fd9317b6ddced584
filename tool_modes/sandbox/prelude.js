// Evaluated first in every run's fresh context, before any user code, by worker.py.
//
// It defines `console` and one async global function per tool, and returns `control`, the
// only door between Python and the run: a function of (op, a, b, c) that answers with
// primitives (strings, numbers) so nothing user code can shadow is ever consulted on the way
// out. Every built-in it needs is captured here, before user code can replace or pollute it,
// and its own bookkeeping lives in prototype-less objects, so a script that rewrites
// `Object.prototype`, `Array.prototype`, `JSON` or `Promise` can only break its own result
// (and the worker re-validates whatever comes out anyway).
(function () {
  "use strict";
  const G = globalThis;
  const apply = Reflect.apply;
  const create = Object.create;
  const defineProperty = Object.defineProperty;
  const freeze = Object.freeze;
  const isArray = Array.isArray;
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const PromiseCtor = Promise;
  const promiseThen = Promise.prototype.then;
  const StringCtor = String;
  const ErrorCtor = Error;
  const TypeErrorCtor = TypeError;
  const objectToString = Object.prototype.toString;
  const stringSlice = String.prototype.slice;

  // Strings built by concatenation are ropes, which the Python binding cannot read: copy flat.
  function flat(text) {
    return apply(stringSlice, text, [0]);
  }

  return function setup(configText) {
    const config = parse(configText);
    const maxCalls = config.maxCalls;
    const maxArgChars = config.maxArgChars;
    const maxLogChars = config.maxLogChars;
    const maxLogLines = config.maxLogLines;

    const resolvers = create(null);
    let queue = create(null);
    let queued = 0;
    let nextId = 0;
    let argChars = 0;
    let limitHit = "";
    let state = 0; // 0 pending, 1 fulfilled, 2 rejected
    let settledValue;
    const logs = create(null);
    let logCount = 0;
    let logChars = 0;
    let logsTruncated = false;

    function rejected(error) {
      return new PromiseCtor(function (_resolve, reject) {
        reject(error);
      });
    }

    function makeTool(toolName, jsName) {
      const quotedName = stringify(toolName);
      const tool = function (args) {
        if (args === undefined) args = {};
        if (args === null || typeof args !== "object" || isArray(args)) {
          return rejected(new TypeErrorCtor(jsName + "() takes one object argument, e.g. " + jsName + "({...})"));
        }
        if (nextId >= maxCalls) {
          limitHit = "tool_calls";
          return rejected(new ErrorCtor("tool call limit reached (" + maxCalls + " calls per run)"));
        }
        let text;
        try {
          text = stringify(args);
        } catch (e) {
          return rejected(new TypeErrorCtor(jsName + "(): arguments are not JSON: " + StringCtor(e)));
        }
        if (typeof text !== "string" || text[0] !== "{") {
          return rejected(new TypeErrorCtor(jsName + "(): arguments must serialise to a JSON object"));
        }
        if (text.length > maxArgChars) {
          return rejected(new TypeErrorCtor(jsName + "(): arguments larger than " + maxArgChars + " characters"));
        }
        // The run's calls together, too: the server decodes and traces every one of them.
        if (argChars + text.length > maxArgChars) {
          return rejected(
            new TypeErrorCtor(
              jsName + "(): the run's tool-call arguments together would pass " + maxArgChars +
                " characters (" + argChars + " already sent); nothing was called",
            ),
          );
        }
        argChars += text.length;
        const id = nextId++;
        return new PromiseCtor(function (resolve, reject) {
          resolvers[id] = [resolve, reject];
          queue[queued++] = "[" + id + "," + quotedName + "," + text + "]";
        });
      };
      defineProperty(tool, "name", { value: jsName });
      return tool;
    }

    const tools = config.tools;
    for (let i = 0; i < tools.length; i++) {
      defineProperty(G, tools[i][0], {
        value: makeTool(tools[i][1], tools[i][0]),
        writable: true,
        enumerable: false,
        configurable: true,
      });
    }

    function show(value) {
      if (typeof value === "string") return value;
      if (value === null || (typeof value !== "object" && typeof value !== "function")) return StringCtor(value);
      if (value instanceof ErrorCtor) return StringCtor(value.stack ? value.name + ": " + value.message + "\n" + value.stack : value);
      try {
        const text = stringify(value);
        if (typeof text === "string") return text;
      } catch (_e) {
        // fall through to String()
      }
      try {
        return StringCtor(value);
      } catch (_e) {
        return apply(objectToString, value, []);
      }
    }

    function logger(prefix) {
      return function () {
        if (logsTruncated) return;
        if (logCount >= maxLogLines) {
          logsTruncated = true;
          logs[logCount++] = "[logs truncated: more than " + maxLogLines + " lines]";
          return;
        }
        let line = prefix;
        for (let i = 0; i < arguments.length; i++) line += (i ? " " : "") + show(arguments[i]);
        logChars += line.length + 1;
        if (logChars > maxLogChars) {
          logsTruncated = true;
          logs[logCount++] = "[logs truncated: more than " + maxLogChars + " characters]";
          return;
        }
        logs[logCount++] = line;
      };
    }
    defineProperty(G, "console", {
      value: freeze({
        log: logger(""),
        info: logger(""),
        debug: logger(""),
        warn: logger("[warn] "),
        error: logger("[error] "),
      }),
      writable: true,
      enumerable: false,
      configurable: true,
    });

    function describe(error) {
      if (error instanceof ErrorCtor) {
        const head = StringCtor(error.name) + ": " + StringCtor(error.message);
        if (error.name === "ToolError") return head;
        const stack = error.stack;
        return typeof stack === "string" && stack ? head + "\n" + stack : head;
      }
      if (error === null || (typeof error !== "object" && typeof error !== "function")) {
        return "uncaught " + typeof error + ": " + StringCtor(error);
      }
      try {
        const text = stringify(error);
        if (typeof text === "string") return "uncaught value: " + text;
      } catch (_e) {
        // fall through
      }
      return "uncaught value: " + apply(objectToString, error, []);
    }

    function jsonList(items, count) {
      let out = "[";
      for (let i = 0; i < count; i++) out += (i ? "," : "") + stringify(items[i]);
      return out + "]";
    }

    return function control(op, a, b, c) {
      switch (op) {
        case "start": {
          const promise = a();
          apply(promiseThen, promise, [
            function (value) {
              state = 1;
              settledValue = value;
            },
            function (error) {
              state = 2;
              settledValue = error;
            },
          ]);
          return 0;
        }
        case "state":
          return state;
        case "limit":
          return limitHit;
        case "drain": {
          let out = "[";
          for (let i = 0; i < queued; i++) out += (i ? "," : "") + queue[i];
          queue = create(null);
          queued = 0;
          return flat(out + "]");
        }
        case "settle": {
          const pair = resolvers[a];
          if (pair === undefined) return 0;
          delete resolvers[a];
          if (b) {
            pair[0](parse(c));
          } else {
            const error = new ErrorCtor(c);
            error.name = "ToolError";
            pair[1](error);
          }
          return 1;
        }
        case "result": {
          const text = stringify(settledValue);
          return typeof text === "string" ? flat(text) : "null";
        }
        case "error":
          return flat(describe(settledValue));
        case "logs":
          return flat(jsonList(logs, logCount));
        default:
          return -1;
      }
    };
  };
})()
