// The project's one version number, read from pyproject.toml, for serverless.yml (the layer's description).
const fs = require('fs');
const path = require('path');

module.exports.version = () => {
  const pyproject = fs.readFileSync(path.join(__dirname, '..', 'pyproject.toml'), 'utf8');
  const found = pyproject.match(/^version\s*=\s*"([^"]+)"\s*$/m);
  if (!found) throw new Error('pyproject.toml has no `version = "..."` line');
  return found[1];
};
