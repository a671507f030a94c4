// `npm run examples`: writes the generated files in example/ (see test/support/examples.ts).
import { writeExamples } from "./support/examples.js";

await writeExamples();
