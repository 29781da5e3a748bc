/** The typed `graphql()` tag: operation types are inferred from ../schema.graphql (through the
 * generated src/graphql-env.d.ts), and `gql.tada check` fails the build when an operation no
 * longer matches the schema. */
import { initGraphQLTada } from "gql.tada";
import type { introspection } from "./graphql-env.d.ts";

export const graphql = initGraphQLTada<{
  introspection: introspection;
  scalars: { DateTime: string; JSON: unknown };
}>();

export type { FragmentOf, ResultOf, VariablesOf } from "gql.tada";
export { readFragment } from "gql.tada";
