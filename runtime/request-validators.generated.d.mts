// Types of the generated validators (runtime/request-validators.generated.mjs).
import type { ErrorObject } from "ajv";

interface GeneratedValidator {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}

export declare const chat: GeneratedValidator;
export declare const completions: GeneratedValidator;
export declare const embeddings: GeneratedValidator;
export declare const anthropic: GeneratedValidator;
