// An ES module handler, as AWS's nodejs18.x/20.x load .mjs files.
export const handler = async (event) => ({ module: "esm", event });
