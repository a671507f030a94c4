// Types of the validator that the build generates from config-schema.ts (see compile-config-schema.ts).
declare const validateEnv: ((env: unknown) => boolean) & { errors?: Array<{ instancePath: string }> | null };
export default validateEnv;
