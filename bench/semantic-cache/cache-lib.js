'use strict';
/** The built @lib/cache: from dist/ (npm run build), or from BENCH_DIST when set. */
const path = require('node:path');
const { ROOT } = require('../support');

const DIST = process.env.BENCH_DIST ? path.resolve(process.env.BENCH_DIST) : path.join(ROOT, 'dist');
module.exports = require(path.join(DIST, 'libs/cache/src'));
