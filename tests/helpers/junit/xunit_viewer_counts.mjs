// Counts per test suite of a JUnit XML file, as xunit-viewer reads it (the parser behind its
// HTML and console views, which merges testcases of the same name within a suite).
//
// node xunit_viewer_counts.mjs XUNIT_VIEWER_DIR FILE.xml -> [{name, tests, failures, errors,
// skipped}] on stdout.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const [dir, file] = process.argv.slice(2)
const { default: parse } = await import(pathToFileURL(join(dir, 'src/cli/parse.js')).href)
const parsed = await parse(readFileSync(file, 'utf8'))
const out = Object.values(parsed.suites).map((suite) => {
  const tests = Object.values(suite.tests)
  const count = (status) => tests.filter((t) => t.status === status).length
  return {
    name: suite.name,
    tests: tests.length,
    failures: count('failure'),
    errors: count('error'),
    skipped: count('skipped')
  }
})
process.stdout.write(JSON.stringify(out))
