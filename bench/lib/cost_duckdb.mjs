// bench/cost's DuckDB side: billed cost by team and service from the FOCUS CSV, tags read from the
// Tags JSON column with json_extract_string. Prints one line per group: team,service,rows,sum
// (sum with 6 decimals), then "TOTAL,<rows>,<sum>". Usage: node cost_duckdb.mjs FILE [THREADS]
import { DuckDBInstance } from '@duckdb/node-api';

const [file, threads] = process.argv.slice(2);
const db = await DuckDBInstance.create(':memory:', threads ? { threads: String(threads) } : {});
const con = await db.connect();
const q = `
  SELECT coalesce(json_extract_string(Tags, '$.team'), 'unallocated') AS team,
         coalesce(json_extract_string(Tags, '$.service'), 'unallocated') AS service,
         count(*) AS n, sum(BilledCost) AS billed
  FROM read_csv('${file.replace(/'/g, "''")}', header = true)
  GROUP BY ALL ORDER BY team, service`;
const reader = await con.runAndReadAll(q);
let rows = 0n, total = 0;
const out = [];
for (const [team, service, n, billed] of reader.getRows()) {
  out.push(`${team},${service},${n},${Number(billed).toFixed(6)}`);
  rows += BigInt(n);
  total += Number(billed);
}
out.push(`TOTAL,${rows},${total.toFixed(6)}`);
console.log(out.join('\n'));
