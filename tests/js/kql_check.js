// Check KQL texts with Microsoft's analyzer (@kusto/language-service-next).
// stdin: {"tables": {"<name>": "(<col>:<type>, ...)"}, "queries": ["...", ...]}
// stdout: [{"diagnostics": [{"severity", "code", "message", "start"}],
//           "strings": [<value of every string literal>],
//           "columns": [[<name>, <type>], ...]}, ...]  (one entry per query)
'use strict';
require('@kusto/language-service-next/bridge.min.js');
require('@kusto/language-service-next/Kusto.Language.Bridge.min.js');

const K = Kusto.Language;
const S = K.Symbols;

function list(items) {
  const out = [];
  for (let i = 0; i < items.Count; i++) out.push(items.getItem(i));
  return out;
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const request = JSON.parse(input);
  const tables = Object.entries(request.tables).map(
    ([name, schema]) => new S.TableSymbol.$ctor7(name, schema, null));
  const globals = K.GlobalState.Default.WithDatabase(new S.DatabaseSymbol.ctor('db', tables));
  const results = request.queries.map((query) => {
    const code = K.KustoCode.ParseAndAnalyze(query, globals);
    const diagnostics = list(code.GetDiagnostics()).map((d) => ({
      severity: String(d.Severity), code: d.Code, message: d.Message, start: d.Start,
    }));
    const strings = [];
    code.Syntax.WalkElements((element) => {
      if (element.Kind === K.Syntax.SyntaxKind.StringLiteralExpression) {
        strings.push(element.LiteralValue);
      }
    });
    const result = code.ResultType;
    const columns = result && result.Columns
      ? list(result.Columns).map((c) => [c.Name, c.Type.Name]) : [];
    return { diagnostics, strings, columns };
  });
  process.stdout.write(JSON.stringify(results));
});
