// JSON values as YAML, the way `controlplane get -o yaml` shows resources (block style, keys in API order).
// A string is quoted (JSON style, which YAML reads) whenever plain YAML could read it as something else.

const PLAIN = /^[A-Za-z_./][A-Za-z0-9_./ :-]*$/;
const SPECIAL = /^(true|false|yes|no|on|off|null|~|y|n)$/i;

function scalar(value) {
  if (value === null) return "null";
  if (typeof value === "number") {
    const text = String(value); // 1e-7: YAML 1.1 readers (PyYAML) want a fraction part before the exponent
    return /e/.test(text) && !text.includes(".") ? text.replace("e", ".0e") : text;
  }
  if (typeof value !== "string") return String(value);
  if (value === "" || !PLAIN.test(value) || SPECIAL.test(value) || value.endsWith(" ") || value.includes(": ")
      || value.endsWith(":") || value.includes(" #")) return JSON.stringify(value);
  return value;
}

function isEmpty(value) {
  return (Array.isArray(value) && value.length === 0) || (value && typeof value === "object" && Object.keys(value).length === 0);
}

function lines(value, indent) {
  const pad = " ".repeat(indent);
  if (Array.isArray(value)) {
    return value.flatMap((item) => {
      if (item && typeof item === "object" && !isEmpty(item)) {
        const [first, ...rest] = lines(item, indent + 2);
        return [`${pad}- ${first.trimStart()}`, ...rest];
      }
      return [`${pad}- ${isEmpty(item) ? JSON.stringify(item) : scalar(item)}`];
    });
  }
  return Object.entries(value).flatMap(([key, item]) => {
    if (item && typeof item === "object" && !isEmpty(item)) return [`${pad}${scalar(key)}:`, ...lines(item, indent + 2)];
    return [`${pad}${scalar(key)}: ${isEmpty(item) ? JSON.stringify(item) : scalar(item)}`];
  });
}

/** The YAML text of a JSON object. */
export function toYaml(value) {
  return `${lines(value, 0).join("\n")}\n`;
}
