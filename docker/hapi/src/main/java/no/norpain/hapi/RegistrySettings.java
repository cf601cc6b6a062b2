package no.norpain.hapi;

import ca.uhn.fhir.jpa.api.config.JpaStorageSettings.ClientIdStrategyEnum;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings.IdStrategyEnum;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * The subset of the official image's {@code hapi.fhir.*} settings that the registry relies on. The
 * defaults here are the registry's choices; docker/hapi/application.yaml states them explicitly so the
 * official image, which has other defaults, gets the same.
 */
@ConfigurationProperties(prefix = "hapi.fhir")
public class RegistrySettings {

	/** Only R4 is built in; the key exists so a mismatching application.yaml fails loudly. */
	private String fhirVersion = "R4";

	/** Erasure deletes every resource of a compartment found by a search in one request. */
	private boolean allowMultipleDelete = true;

	/** Physical erasure ($expunge) of deleted resources and all their versions. */
	private boolean expungeEnabled = true;

	/** DELETE ...?_expunge=true: delete and expunge in one step. */
	private boolean deleteExpungeEnabled = true;

	/**
	 * Off, to answer like the embedded store: the façade decides what may be deleted, and erasure removes
	 * referencing resources itself rather than trusting HAPI's cascade.
	 */
	private boolean enforceReferentialIntegrityOnDelete = false;

	/** On: a reference to a resource that does not exist is refused (400), as the embedded store does. */
	private boolean enforceReferentialIntegrityOnWrite = true;

	/** Never invent placeholder targets for dangling references. */
	private boolean autoCreatePlaceholderReferenceTargets = false;

	/** The registry never stores references to other servers. */
	private boolean allowExternalReferences = false;

	/** :contains on string parameters, as the embedded store offers (the façade limits who may use it). */
	private boolean allowContainsSearches = true;

	/** Client ids of any form (update-as-create), server ids as UUIDs, like the embedded store. */
	private ClientIdStrategyEnum clientIdStrategy = ClientIdStrategyEnum.ANY;

	private IdStrategyEnum serverIdStrategy = IdStrategyEnum.UUID;

	/** 0: a search right after a write sees the write (erasure verification depends on it). */
	private long reuseCachedSearchResultsMillis = 0;

	private int defaultPageSize = 20;

	private int maxPageSize = 1000;

	public String getFhirVersion() {
		return fhirVersion;
	}

	public void setFhirVersion(String fhirVersion) {
		this.fhirVersion = fhirVersion;
	}

	public boolean isAllowMultipleDelete() {
		return allowMultipleDelete;
	}

	public void setAllowMultipleDelete(boolean allowMultipleDelete) {
		this.allowMultipleDelete = allowMultipleDelete;
	}

	public boolean isExpungeEnabled() {
		return expungeEnabled;
	}

	public void setExpungeEnabled(boolean expungeEnabled) {
		this.expungeEnabled = expungeEnabled;
	}

	public boolean isDeleteExpungeEnabled() {
		return deleteExpungeEnabled;
	}

	public void setDeleteExpungeEnabled(boolean deleteExpungeEnabled) {
		this.deleteExpungeEnabled = deleteExpungeEnabled;
	}

	public boolean isEnforceReferentialIntegrityOnDelete() {
		return enforceReferentialIntegrityOnDelete;
	}

	public void setEnforceReferentialIntegrityOnDelete(boolean value) {
		this.enforceReferentialIntegrityOnDelete = value;
	}

	public boolean isEnforceReferentialIntegrityOnWrite() {
		return enforceReferentialIntegrityOnWrite;
	}

	public void setEnforceReferentialIntegrityOnWrite(boolean value) {
		this.enforceReferentialIntegrityOnWrite = value;
	}

	public boolean isAutoCreatePlaceholderReferenceTargets() {
		return autoCreatePlaceholderReferenceTargets;
	}

	public void setAutoCreatePlaceholderReferenceTargets(boolean value) {
		this.autoCreatePlaceholderReferenceTargets = value;
	}

	public boolean isAllowExternalReferences() {
		return allowExternalReferences;
	}

	public void setAllowExternalReferences(boolean allowExternalReferences) {
		this.allowExternalReferences = allowExternalReferences;
	}

	public boolean isAllowContainsSearches() {
		return allowContainsSearches;
	}

	public void setAllowContainsSearches(boolean allowContainsSearches) {
		this.allowContainsSearches = allowContainsSearches;
	}

	public ClientIdStrategyEnum getClientIdStrategy() {
		return clientIdStrategy;
	}

	public void setClientIdStrategy(ClientIdStrategyEnum clientIdStrategy) {
		this.clientIdStrategy = clientIdStrategy;
	}

	public IdStrategyEnum getServerIdStrategy() {
		return serverIdStrategy;
	}

	public void setServerIdStrategy(IdStrategyEnum serverIdStrategy) {
		this.serverIdStrategy = serverIdStrategy;
	}

	public long getReuseCachedSearchResultsMillis() {
		return reuseCachedSearchResultsMillis;
	}

	public void setReuseCachedSearchResultsMillis(long value) {
		this.reuseCachedSearchResultsMillis = value;
	}

	public int getDefaultPageSize() {
		return defaultPageSize;
	}

	public void setDefaultPageSize(int defaultPageSize) {
		this.defaultPageSize = defaultPageSize;
	}

	public int getMaxPageSize() {
		return maxPageSize;
	}

	public void setMaxPageSize(int maxPageSize) {
		this.maxPageSize = maxPageSize;
	}
}
