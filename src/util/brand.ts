/** Branded scalars: a `T` that the checker will not confuse with another `T` of a different meaning. */
declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };
